"""Exactly-once webhooks with FastAPI: however often a delivery is retried, its workflow runs once.

Payment providers (and Slack, GitHub, ...) retry a webhook until they get a 2xx in time, and may
deliver the same event concurrently. Using the provider's event id as the workflow id makes every
retry land on the same durable workflow: the first delivery starts it, the others get its result.

Run it (SQLite file ./payments-webhook.sqlite, or set TRANSACT_SYSTEM_DATABASE_URL):

    pip install 'transact[web]'
    python examples/fastapi_webhook.py --port 8000
    curl -X POST localhost:8000/webhooks/payments -H 'content-type: application/json' \
         -d '{"event_id": "evt_1", "type": "payment.succeeded", "amount": 42}'

Post the same event again: the answer is identical and payments-ledger.jsonl has one line.
"""

from __future__ import annotations

import argparse
import json
import os
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn
from fastapi import FastAPI
from pydantic import BaseModel

from transact import DBOS, SetWorkflowID

LEDGER = os.environ.get("LEDGER_PATH", "payments-ledger.jsonl")


class PaymentEvent(BaseModel):
    event_id: str
    type: str
    amount: int


@DBOS.step()
def record_payment(event_type: str, amount: int) -> str:
    """Stand-in for a call to a ledger service: issues a new receipt number on every call."""
    receipt = f"rcpt-{uuid.uuid4().hex[:12]}"
    with open(LEDGER, "a", encoding="utf-8") as ledger:
        ledger.write(json.dumps({"receipt": receipt, "type": event_type, "amount": amount}) + "\n")
    return receipt


@DBOS.workflow()
def payment_workflow(event_type: str, amount: int) -> dict[str, Any]:
    receipt = record_payment(event_type, amount)
    return {"receipt": receipt, "amount": amount}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    DBOS(config={"name": "payments-webhook"})
    DBOS.launch()
    yield
    DBOS.destroy()


app = FastAPI(lifespan=lifespan)


@app.post("/webhooks/payments")
async def payment_webhook(event: PaymentEvent) -> dict[str, Any]:
    # The event id is the idempotency key: a retried delivery finds the workflow already started.
    with SetWorkflowID(event.event_id):
        handle = await DBOS.start_workflow_async(payment_workflow, event.type, event.amount)
    return {"workflow_id": handle.workflow_id, **await handle.get_result()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8000)
    uvicorn.run(app, host="127.0.0.1", port=parser.parse_args().port, log_level="warning")
