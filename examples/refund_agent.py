"""A refunds agent whose tools are durable steps with retries.

The tools are the seed's two steps, unchanged: ``process_refund`` may be attempted twice and
``apply_discount`` three times, with exponential back-off between attempts. A step that fails on
every attempt raises ``StepRetriesExceededError`` (alias ``DBOSMaxStepRetriesExceeded``) whose
``.errors`` holds each attempt's exception. Once a step succeeds its result is checkpointed, so a
crash afterwards never repeats the refund.

``Agent`` here is a stand-in for an LLM agent library (the seed uses OpenAI's Swarm): same name,
instructions and tools, but a fixed rule picks the tool, so the example runs offline. The payment
and discount services are simulated with scripted outages.

Run it (SQLite file ./refund-agent.sqlite, or set TRANSACT_SYSTEM_DATABASE_URL):

    python examples/refund_agent.py
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from transact import DBOS, StepRetriesExceededError


class FlakyService:
    """A remote service with scripted outages: the next ``outages[item]`` calls for an item time out."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.outages: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()

    def call(self, item: str) -> None:
        self.calls[item] += 1
        if self.outages[item] > 0:
            self.outages[item] -= 1
            raise TimeoutError(f"{self.name} timed out for {item!r} (call {self.calls[item]})")


payments = FlakyService("payments API")
discounts = FlakyService("discounts API")


@DBOS.step(retries_allowed=True, max_attempts=2)
def process_refund(item: str, reason: str) -> str:
    payments.call(item)
    return f"Processed refund for item {item}, because {reason}"


@DBOS.step(retries_allowed=True, max_attempts=3)
def apply_discount(amount: int) -> str:
    discounts.call(str(amount))
    return f"Applied discount of {amount}%"


@dataclass
class Agent:
    name: str
    instructions: str
    functions: list[Callable[..., str]]

    def run(self, item: str, reason: str) -> str:
        tools = {f.__name__: f for f in self.functions}
        if "expensive" in reason.lower():
            return tools["apply_discount"](10)
        return tools["process_refund"](item, reason)


refunds_agent = Agent(
    name="Refunds Agent",
    instructions="Help the user with a refund. If the reason is that it was too expensive, offer the user a refund code.",
    functions=[process_refund, apply_discount],
)


@DBOS.workflow()
def refund_request(item: str, reason: str) -> str:
    """One customer request, handled durably: the tool call the agent makes is checkpointed."""
    return refunds_agent.run(item, reason)


def main() -> None:
    DBOS(config={"name": "refund-agent"})
    DBOS.launch()
    try:
        discounts.outages["10"] = 1  # the first discount call times out; the retry succeeds
        print(refund_request("lamp", "it was too expensive"))
        print(refund_request("mug", "it arrived broken"))
        payments.outages["chair"] = 2  # both allowed attempts time out
        try:
            refund_request("chair", "it arrived broken")
        except StepRetriesExceededError as exc:
            print(f"Refund failed after {len(exc.errors)} attempts:")
            for error in exc.errors:
                print(f"  {type(error).__name__}: {error}")
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main()
