"""Load: 200 orchestrations of 3 activities each, started at once, all complete."""

from __future__ import annotations

import asyncio
from pathlib import Path

from devhost.host import Host

APP = Path(__file__).parent / "apps" / "durable_app"


def test_200_concurrent_chains_all_complete(tmp_path: Path) -> None:
    async def main() -> None:
        host = Host(APP, port=0, data_dir=tmp_path / "data")
        await host.start()
        try:
            engine = host.engine
            assert engine is not None
            ids = [engine.start_new("chain", f"load-{n:03}") for n in range(200)]
            statuses = await asyncio.wait_for(
                asyncio.gather(*(engine.wait_for(i) for i in ids)), timeout=60)
            assert [s["runtimeStatus"] for s in statuses] == ["Completed"] * 200
            assert all(s["output"] == ["Hello a", "Hello async b", "Hello c"] for s in statuses)
            assert engine.store.counts() == {"Completed": 200}
            assert len(engine.query(prefix="load-", statuses=["Completed"])) == 200
        finally:
            await host.stop()

    asyncio.run(main())
