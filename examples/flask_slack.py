"""A Slack-style bot with Flask: each event is handled exactly once, however often Slack retries it.

Slack's Events API redelivers an event (same ``event_id``) when the app does not acknowledge it
within 3 seconds, and deliveries can overlap. The handler below is the one from the DBOS
programming model, unchanged: it starts a durable workflow whose id is the event id, so retries
find the workflow already started and the reply is posted once. A plain Flask route stands in for
Slack Bolt's request dispatch, so the example runs offline.

Run it (SQLite file ./slack-bot.sqlite, or set TRANSACT_SYSTEM_DATABASE_URL):

    pip install 'transact[web]'
    python examples/flask_slack.py --port 3000
    curl -X POST localhost:3000/slack/events -H 'content-type: application/json' -d '{"type":
         "event_callback", "event_id": "Ev1", "event": {"type": "message", "channel": "C1", "text": "hi"}}'
    curl localhost:3000/slack/replies/Ev1

Replies go to slack-outbox.jsonl instead of Slack's chat.postMessage.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, request

from transact import DBOS, SetWorkflowID, WorkflowNotFoundError

OUTBOX = os.environ.get("OUTBOX_PATH", "slack-outbox.jsonl")


@dataclass
class BoltRequest:
    """The part of ``slack_bolt.BoltRequest`` the handler uses: the parsed event body."""

    body: dict[str, Any]


@DBOS.step()
def compose_reply(text: str) -> str:
    return f"You said: {text}"


@DBOS.step()
def post_message(channel: str, text: str) -> str:
    """Stand-in for chat.postMessage: appends to the outbox and returns the message timestamp."""
    ts = f"{time.time():.6f}"
    with open(OUTBOX, "a", encoding="utf-8") as outbox:
        outbox.write(json.dumps({"channel": channel, "text": text, "ts": ts}) + "\n")
    return ts


@DBOS.workflow()
def message_workflow(event: dict[str, Any]) -> str:
    reply = compose_reply(event.get("text", ""))
    return post_message(event["channel"], reply)


def handle_message(request: BoltRequest) -> None:
    event_id = request.body["event_id"]
    with SetWorkflowID(event_id):
        DBOS.start_workflow(message_workflow, request.body["event"])


app = Flask(__name__)


@app.post("/slack/events")
def slack_events() -> Any:
    body = request.get_json(force=True)
    if body.get("type") == "url_verification":  # Slack's one-time endpoint check
        return {"challenge": body.get("challenge")}
    if body.get("type") == "event_callback" and body.get("event", {}).get("type") == "message":
        handle_message(BoltRequest(body))
    return {"ok": True, "event_id": body.get("event_id")}  # acknowledge at once; the workflow replies


@app.get("/slack/replies/<event_id>")
def reply(event_id: str) -> Any:
    try:
        handle = DBOS.retrieve_workflow(event_id)
    except WorkflowNotFoundError:
        return {"error": f"no event {event_id}"}, 404
    return {"event_id": event_id, "ts": handle.get_result(timeout=30)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=3000)
    DBOS(config={"name": "slack-bot"})
    DBOS.launch()
    try:
        app.run(host="127.0.0.1", port=parser.parse_args().port, threaded=True)
    finally:
        DBOS.destroy()
