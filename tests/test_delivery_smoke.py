from __future__ import annotations

from shared.outbox import Outbox
from shared.service import ensure_topics
from tests.plumbing import (
    CounterIncremented,
    counter_consumer,
    make_relay,
    prepare,
    start_consumer,
    write_events,
)
from tests.support import Infra, eventually


async def test_outbox_to_inbox_small(infra: Infra, database: str, topic_prefix: str) -> None:
    pool = await prepare(database)
    outbox = Outbox("/test", topic_prefix)
    await ensure_topics(infra.bootstrap_servers, [outbox.topic_for(CounterIncremented)], 3)
    events = [CounterIncremented(counter_id=f"c{a}", seq=s) for s in range(1, 11) for a in range(5)]
    await write_events(pool, outbox, events)
    relay = make_relay(pool, database, infra.bootstrap_servers)
    await relay.start()
    broker = await start_consumer(infra.bootstrap_servers, pool, counter_consumer(topic_prefix))

    async def done() -> bool:
        rows = await pool.fetch("SELECT * FROM counter_projection")
        return len(rows) == 5 and all(r["applied"] == 10 for r in rows)

    await eventually(done, timeout=20)
    rows = await pool.fetch("SELECT * FROM counter_projection")
    assert all(r["out_of_order"] == 0 and r["last_seq"] == 10 for r in rows)
    await broker.stop()
    await relay.stop()
    await pool.close()
