"""A tiny business service that Conveyor's ``http`` executor calls.

Run it with one command from the repository root::

    .venv/bin/python examples/business_service/app.py --port 9000

Each route is one task type. Conveyor POSTs ``{"task_id", "attempt", "task_type", "payload"}``
with an ``Idempotency-Key: task_id:attempt`` header and reads back the response contract
``{"success", "data", "error", "retryable"}`` (see ``conveyor.executors.http``).
``/webhooks/conveyor`` is the other direction: a receiver for final-state callbacks that checks
their Standard Webhooks signature (``conveyor.webhooks.verify``) with the secret given in
``CONVEYOR_WEBHOOK_SECRET``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import uuid
from typing import Any

import uvicorn
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from conveyor.webhooks import WebhookVerificationError, verify


class TaskCall(BaseModel):
    task_id: str
    attempt: int
    task_type: str
    payload: dict[str, Any]


app = FastAPI(title="example business service")
# Delivery is at least once: remember what each task already did so a repeat has no new effect.
_sent: dict[str, str] = {}


@app.post("/tasks/send-email")
async def send_email(call: TaskCall) -> dict[str, Any]:
    """Succeeds with data; a second delivery of the same task returns the first result."""
    to = call.payload.get("to")
    if not isinstance(to, str) or "@" not in to:
        return {"success": False, "error": "payload.to must be an e-mail address"}
    message_id = _sent.setdefault(call.task_id, f"<{uuid.uuid4()}@example>")
    return {"success": True, "data": {"to": to, "message_id": message_id}}


@app.post("/tasks/charge")
async def charge(call: TaskCall) -> dict[str, Any]:
    """A business failure: permanent for a declined card, retryable when the bank is busy."""
    amount = call.payload.get("amount", 0)
    if not isinstance(amount, int) or amount <= 0:
        return {"success": False, "error": "payload.amount must be a positive integer"}
    if amount > 1000:
        return {"success": False, "error": "card declined", "retryable": False}
    if call.payload.get("bank_busy"):
        return {"success": False, "error": "bank busy", "retryable": True}
    return {"success": True, "data": {"charged": amount}}


@app.post("/tasks/flaky")
async def flaky(call: TaskCall) -> JSONResponse:
    """503 on the first attempt, success after: shows a retry with backoff."""
    if call.attempt == 1:
        return JSONResponse({"error": "warming up"}, status_code=503)
    return JSONResponse({"success": True, "data": {"attempt": call.attempt}})


@app.post("/tasks/slow")
async def slow(call: TaskCall) -> dict[str, Any]:
    """Sleeps ``payload.seconds``: set a task timeout below it to see TIMEOUT."""
    await asyncio.sleep(float(call.payload.get("seconds", 5)))
    return {"success": True, "data": {"slept": call.payload.get("seconds", 5)}}


@app.post("/webhooks/conveyor", status_code=204)
async def conveyor_webhook(request: Request) -> None:
    """Accept a final-state callback only if it is signed with the shared secret and recent."""
    secret = os.environ.get("CONVEYOR_WEBHOOK_SECRET", "")
    try:
        document = verify(secret, request.headers, await request.body())
    except WebhookVerificationError as exc:
        raise HTTPException(status_code=401, detail=str(exc)) from exc
    print("task finished:", document)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9000)
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
