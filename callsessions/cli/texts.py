"""The command line's words: program name, environment variables and the help texts.

Kept apart from the parser so that every text a user reads is in one place, and so that
nothing here imports more than the standard library (``callsessions --help`` stays fast).
"""

from __future__ import annotations

__all__ = [
    "COUNT_EPILOG",
    "DEMO_DESCRIPTION",
    "ENVIRONMENT_HELP",
    "ENV_BASE_URL",
    "ENV_EMAIL",
    "ENV_PASSWORD",
    "ENV_QUEUE",
    "ENV_TOKEN",
    "EXIT_HELP",
    "EXPORT_EPILOG",
    "PROG",
    "PULL_EPILOG",
    "WORKER_EPILOG",
]

PROG = "callsessions"
ENV_TOKEN = "CALLSESSIONS_TOKEN"
ENV_EMAIL = "CALLSESSIONS_EMAIL"
ENV_PASSWORD = "CALLSESSIONS_PASSWORD"
ENV_BASE_URL = "CALLSESSIONS_BASE_URL"
ENV_QUEUE = "CALLSESSIONS_QUEUE"

#: every CALLSESSIONS_* variable the package reads (the README's table says the same)
ENVIRONMENT_HELP = f"""\
environment (secrets come from here only, never from options):
  {ENV_TOKEN}     a token (JWT) for the API
  {ENV_EMAIL}, {ENV_PASSWORD}
                         with --auth-url: log in, and refresh the token as needed
  {ENV_BASE_URL}  the service root when --base-url is not given
  {ENV_QUEUE}     Redis URL for 'arq callsessions.workers.arq.WorkerSettings',
                         and for 'worker' without --queue ('pull' needs --queue)
"""

EXIT_HELP = """\
exit codes:
  0    success
  1    failure (one line; the traceback with --verbose)
  2    invalid usage or input, a refused output (no request is sent)
  130  interrupted (a pull can be continued with --resume); 143, 129: SIGTERM, SIGHUP
"""

PULL_EPILOG = f"""\
output formats (by the extension of --out):
  .jsonl    one JSON object per line, as the API sends it (camelCase names)
  .csv      a header row of the field names (id first); lists and objects as JSON
  .sqlite   table call_sessions, primary key id, one column per field; records are
            upserted, so pulling the same calls again leaves each one once
  .parquet  typed columns (needs the parquet extra); DIR/ one part per window

an interrupted pull never leaves a complete-looking file: files are written to
OUT.partial and renamed when complete; SQLite commits each finished window. The
progress is kept in OUT.checkpoint; run the same command with --resume to continue
(windows already written are skipped, no record is written twice). An existing
output is never replaced unless --overwrite is given (SQLite is merged into).

with --queue redis://HOST:6379/0 the pull runs on 'callsessions worker' processes:
this command plans, enqueues one job per window, shows their progress, verifies the
parts in --out DIR/ and writes its _manifest.json. Run it again to finish what failed.

{ENVIRONMENT_HELP}
{EXIT_HELP}
example:
  read -rs {ENV_TOKEN} && export {ENV_TOKEN}   # typed, not echoed, not in history
  callsessions pull --base-url https://analyse.twin24.ai \\
      --from 2026-01-01T00:00:00+03:00 --to 2026-01-08T00:00:00+03:00 \\
      --status ANSWERED --fields id,phone,duration,createdAt --out calls.jsonl
"""

COUNT_EPILOG = f"""\
Without --plan: one request (a page of one record); the number goes to stdout.
With --plan: also the windows, pages and requests a pull with the same options would
make, and an estimate of its time at the latency measured meanwhile. Only the planner's
requests are sent (a dry run of a pull): counts of one record, and the range's first
page, with which the planner counts it.

{ENVIRONMENT_HELP}
{EXIT_HELP}"""

EXPORT_EPILOG = f"""\
The server builds the file; it is streamed to disk (never held in memory), written to a
temporary name beside --out and renamed into place when complete. An existing --out is
replaced only with --overwrite.

{ENVIRONMENT_HELP}
{EXIT_HELP}"""

WORKER_EPILOG = f"""\
A worker pulls the windows a coordinator ('callsessions pull ... --queue URL') enqueues,
each into its part file of the coordinator's --out directory, which every worker must see
at the same path. The service and the token come from this machine's environment
({ENV_BASE_URL} or --base-url, and {ENV_TOKEN}), never from Redis. Stop it with
Ctrl-C or SIGTERM: its running windows go back to the queue. Needs the arq extra
(pip install 'callsessions[arq]').
"""

DEMO_DESCRIPTION = """\
Starts the simulator in this process on a free loopback port (20-50 ms latency, a few
429/503 answers, dropped connections, truncated bodies and shuffled ties), pulls a week
of calls into --out and checks every id against the simulator's own data. No network,
no account. The output goes to the user's cache folder unless --out is given, and is
replaced by the next demo.
"""
