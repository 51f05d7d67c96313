"""The wire protocol, pure: no aiohttp, no asyncio (schema, query, wire, records, planning)."""
