"""The simulator's data tables: field and status names, and what generated calls are made of.

Plain constants, kept apart from the generator in ``_data.py`` so that the logic stays short.
"""

from __future__ import annotations

__all__ = [
    "ANSWERED",
    "BOT_LINES",
    "FIELDS",
    "HUMAN_LINES",
    "MARKERS",
    "NEVER_STARTED",
    "NOT_FINISHED",
    "REGIONS",
    "RESULT_NAMES",
    "SORT_FIELDS",
    "STATUSES",
    "STATUS_INDEX",
    "STATUS_WEIGHTS",
    "TASK_SPECS",
    "TASK_WEIGHTS",
]

FIELDS: tuple[str, ...] = (
    "id",
    "phone",
    "duration",
    "taskId",
    "taskName",
    "botId",
    "botName",
    "regionId",
    "timezone",
    "status",
    "shortNumber",
    "transferredToOperator",
    "linkToLog",
    "createdAt",
    "updatedAt",
    "startedAt",
    "price",
    "messages",
    "messagesAsString",
    "additional",
    "externalId",
    "dialogResults",
    "responder",
    "nps",
    "isFinished",
    "recordPath",
    "operatorDuration",
    "botDuration",
    "markers",
)

STATUSES: tuple[str, ...] = (
    "CANCEL",
    "ANSWERED",
    "NOANSWER",
    "BUSY",
    "CONGESTION",
    "CHANUNAVAIL",
    "FAILED",
    "BLACKLIST",
    "DIAL",
    "INPROGRESS",
    "FZ230",
    "INVALID",
    "UNAVAILABLE",
    "EMPTY_AON",
)
STATUS_INDEX = {name: i for i, name in enumerate(STATUSES)}
# The mix of a real outbound campaign: mostly no answer, answered or busy.
STATUS_WEIGHTS = (1, 30, 40, 12, 2, 3, 2, 1, 1, 1, 1, 1, 4, 1)
ANSWERED = STATUS_INDEX["ANSWERED"]
NOT_FINISHED = frozenset({STATUS_INDEX["DIAL"], STATUS_INDEX["INPROGRESS"]})
# These never reached the network: no startedAt.
NEVER_STARTED = frozenset(STATUS_INDEX[s] for s in ("BLACKLIST", "FZ230", "INVALID", "EMPTY_AON"))

SORT_FIELDS: tuple[str, ...] = ("createdAt", "updatedAt", "startedAt", "duration")

REGIONS = (  # (regionId, UTC offset in seconds)
    (77, 10800),
    (50, 10800),
    (78, 10800),
    (16, 10800),
    (23, 10800),
    (61, 10800),
    (63, 14400),
    (66, 18000),
    (74, 18000),
    (2, 18000),
    (54, 25200),
    (24, 25200),
    (38, 28800),
    (25, 36000),
    (39, 7200),
)

TASK_SPECS = (  # (task name, bot name, company offset, weight, price per minute in cents)
    ("Опрос удовлетворённости, январь", "Анна — опрос NPS", 0, 30, 150),
    ("Напоминание о записи к врачу", "Мария — напоминания", 0, 25, 120),
    ("Подтверждение доставки", "Олег — доставка", 0, 20, 135),
    ("Информирование о задолженности", "Светлана — взыскание", 0, 12, 190),
    ("Приглашение на вебинар", "Иван — маркетинг", 1, 8, 110),
    ("Актуализация базы клиентов", "Елена — анкета", 1, 5, 100),
)
TASK_WEIGHTS = tuple(spec[3] for spec in TASK_SPECS)

BOT_LINES = (
    "Здравствуйте! Вас беспокоит голосовой помощник.",
    "Добрый день! Это автоматический звонок.",
    "Подскажите, пожалуйста, вам удобно сейчас говорить?",
    "Оцените, пожалуйста, качество обслуживания от нуля до десяти.",
    "Напоминаю о вашей записи на завтра.",
    "Ваш заказ готов к доставке. Подтверждаете адрес?",
    "Спасибо за ответ! Хорошего дня.",
    "Передаю вас оператору, оставайтесь на линии.",
    "Извините, я не расслышал. Повторите, пожалуйста.",
    "Приглашаем вас на бесплатный вебинар в четверг.",
)
HUMAN_LINES = (
    "Алло.",
    "Да, удобно.",
    "Нет, перезвоните позже.",
    "Десять, всё отлично.",
    "Семь, в целом нормально.",
    "Да, подтверждаю.",
    "А кто это?",
    "Соедините с оператором.",
    "Не интересует, спасибо.",
    "Хорошо, приду.",
)
RESULT_NAMES = ("interest", "confirmed", "callback", "nps_given", "operator_requested")
MARKERS = ("positive", "negative", "callback", "autoanswer", "operator", "silence")
