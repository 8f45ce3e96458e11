"""Aggregation benchmark: one day's rollup against the floor of reading that day.

    python bench/aggregate.py [--events 10000000] [--days 30] [--orgs 1000] [--repeat 5]

Generates the raw log inside embedded ClickHouse (chDB), in a temporary directory:
N events over D days for K organizations with a long tail, plus 1% resent duplicates in
separate parts (so FINAL has work to do). Then measures, in the same run:

  floor      the aggregation's own SELECT ... GROUP BY of one day, with no write;
  one day    ``Aggregator.aggregate_day`` (the INSERT ... SELECT and its run log rows);
  all days   every day of the range, as a catch-up does.

It prints the median of --repeat runs for the first two and their ratio.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path

from clickhouse_connect.driver.client import Client

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aggregator import sql  # noqa: E402
from aggregator.runner import Aggregator  # noqa: E402
from aggregator.settings import AggregatorSettings  # noqa: E402
from aiusage.clickhouse import connect  # noqa: E402
from aiusage.clock import SystemClock  # noqa: E402
from aiusage.schema import SchemaContext, context_for, migrate  # noqa: E402
from aiusage.settings import ClickHouseSettings  # noqa: E402

FIRST_DAY = date(2026, 10, 1)


def generate(client: Client, ctx: SchemaContext, events: int, days: int, orgs: int) -> None:
    raw = f"`{ctx.database}`.ai_usage_log"
    columns = (
        "event_id, timestamp, organization_id, model, provider, feature, user_id, "
        "input_tokens, cached_tokens, output_tokens, cost_usd, kafka_topic, kafka_partition, "
        "kafka_offset"
    )
    # Organization rank ~ a Pareto tail: a few organizations carry most of the traffic.
    client.command(
        f"""INSERT INTO {raw} ({columns})
        SELECT
            generateUUIDv4(number),
            toDateTime64('{FIRST_DAY}', 3, 'UTC') + toIntervalMillisecond(
                intDiv(number * {days * 86_400_000}, {events})),
            concat('org-', leftPad(toString(least({orgs}, toUInt32(1 / pow(randCanonical(), 0.9)))),
                4, '0')),
            ['gpt-4o', 'gpt-4o-mini', 'claude-sonnet', 'claude-haiku'][number % 4 + 1],
            'provider', ['chat', 'summarize', 'search'][number % 3 + 1],
            concat('user-', toString(number % 500)),
            100 + number % 5000 AS input, intDiv(input, 1 + number % 4), 50 + number % 900,
            toDecimal64(number % 100000, 9) / 1000000, 'bench', toInt32(number % 6),
            toInt64(number)
        FROM numbers({events})
        SETTINGS max_insert_threads = 2"""
    )
    client.command(
        f"INSERT INTO {raw} ({columns}) SELECT {columns} FROM {raw} "
        f"WHERE cityHash64(event_id) % 100 = 0"
    )


def timed(action: Callable[[], object]) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--orgs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data:
        settings = ClickHouseSettings(dsn=f"chdb://{data}", database="bench")
        client = connect(settings)
        ctx = context_for(settings)
        migrate(client, ctx)
        seconds = timed(lambda: generate(client, ctx, args.events, args.days, args.orgs))
        total = client.query(f"SELECT count() FROM `{ctx.database}`.ai_usage_log").result_rows
        print(f"generated {total[0][0]:,} raw rows ({args.events:,} events + 1% resent) "
              f"over {args.days} days in {seconds:.1f}s")  # fmt: skip
        aggregator = Aggregator(client, ctx, AggregatorSettings(), SystemClock())
        day = FIRST_DAY + timedelta(days=args.days // 2)
        select = (
            sql.day_aggregate_select(ctx)
            + "\nSETTINGS do_not_merge_across_partitions_select_final = 1"
        )
        params = {"day": day, "version": 1}
        floor = [timed(lambda: client.query(select, parameters=params)) for _ in range(args.repeat)]
        one_day = [timed(lambda: aggregator.aggregate_day(day)) for _ in range(args.repeat)]
        plain = select.replace(" FINAL", "")
        no_final = [
            timed(lambda: client.query(plain, parameters=params)) for _ in range(args.repeat)
        ]
        days = [FIRST_DAY + timedelta(days=n) for n in range(args.days)]
        all_days = timed(lambda: aggregator.run(days))
        client.close()
    f, o, n = statistics.median(floor), statistics.median(one_day), statistics.median(no_final)
    per_day = args.events / args.days
    print(f"one day ({per_day:,.0f} events), median of {args.repeat}:")
    print(f"  floor (SELECT ... FINAL GROUP BY, no write): {f * 1000:8.1f} ms")
    print(f"  aggregate_day (INSERT ... SELECT + run log): {o * 1000:8.1f} ms")
    print(f"  ratio aggregate_day / floor:                 {o / f:8.2f}")
    print(f"  for scale, the SELECT without FINAL:         {n * 1000:8.1f} ms")
    print(f"all {args.days} days: {all_days:.2f}s ({all_days / args.days * 1000:.0f} ms per day)")


if __name__ == "__main__":
    main()
