"""The cost of tracing on the step path: the per-step overhead (slope of workflow latency over
0, 1, 3 and 10 steps) with tracing off and with it on, interleaved so machine noise hits both.
Target: a traced step costs <= 1.5x an untraced one on SQLite.

    python -m bench.tracing_bench [--db sqlite|postgres|both] [--rounds R] [--n N]

"On" is what a production app runs: ``enable_otlp`` with an SDK ``TracerProvider`` whose batch
processor hands every span to an exporter (here one that drops them, so the network is not
measured). Prints the median slope of each mode over the rounds and their ratio.
"""

from __future__ import annotations

import argparse
import functools
import statistics
from collections.abc import Sequence

from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

from bench.core import STEP_COUNTS, bench_steps
from bench.harness import PostgresTarget, SqliteTarget, Target, launched, slope, timed


class _DroppingExporter(SpanExporter):
    """Receives every span the batch processor flushes and keeps none of them."""

    def __init__(self) -> None:
        self.spans = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.spans += len(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass


def _per_step_ms(url: str, n: int, *, traced: bool) -> float:
    config = {"enable_otlp": True} if traced else {}
    medians = []
    with launched(url, **config):
        for k in STEP_COUNTS:
            samples = timed(functools.partial(bench_steps, k), n, warmup=10)
            medians.append((float(k), statistics.median(samples) * 1000))
    return slope(medians)


def run(target: Target, label: str, rounds: int, n: int) -> tuple[float, float]:
    off: list[float] = []
    on: list[float] = []
    for r in range(rounds):
        url = target.fresh_url(f"tracing{r}")
        off.append(_per_step_ms(url, n, traced=False))
        on.append(_per_step_ms(url, n, traced=True))
    m_off, m_on = statistics.median(off), statistics.median(on)
    print(
        f"{label}: per-step overhead tracing off {m_off:.4f} ms, on {m_on:.4f} ms, "
        f"ratio {m_on / m_off:.2f}x (rounds: off {[round(x, 4) for x in off]}, on {[round(x, 4) for x in on]})",
        flush=True,
    )
    return m_off, m_on


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=("sqlite", "postgres", "both"), default="both")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--n", type=int, default=300, help="workflows per step count and round")
    args = parser.parse_args()
    exporter = _DroppingExporter()
    provider = TracerProvider()
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # the app's own provider: enable_otlp leaves it in place
    if args.db in ("sqlite", "both"):
        target: Target = SqliteTarget()
        try:
            run(target, "sqlite", args.rounds, args.n)
        finally:
            target.close()
    if args.db in ("postgres", "both"):
        target = PostgresTarget()
        try:
            run(target, "postgres", args.rounds, args.n)
        finally:
            target.close()
    provider.shutdown()
    print(f"spans exported: {exporter.spans}")


if __name__ == "__main__":
    main()
