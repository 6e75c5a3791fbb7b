"""The bare accept path for comparison: one INSERT and one persistent publish.

A WSGI app served like ``overcast-api`` (cheroot, same thread count) that
parses the JSON body, inserts one row, publishes one persistent message with
publisher confirms, and answers 202. What any accept path must at least do.

    python bench/bare_accept.py --database URL --broker URL --bind 127.0.0.1:PORT
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

from kombu import Connection, Exchange, Queue
from kombu.pools import ProducerPool
from sqlalchemy import Column, MetaData, String, Table, Text, create_engine, insert

from services.api.server import SocketServer as WSGIServer
from services.api.server import listen

METADATA = MetaData()
BARE = Table(
    "bare_nodes", METADATA, Column("id", String(40), primary_key=True), Column("body", Text)
)
EXCHANGE = Exchange("bare", type="direct", durable=True)
QUEUE = Queue("bare", EXCHANGE, routing_key="bare", durable=True)


def make_app(database: str, broker: str) -> Any:
    engine = create_engine(database, pool_size=32, max_overflow=0)
    METADATA.create_all(engine)
    connection = Connection(broker, transport_options={"confirm_publish": True})
    producers = ProducerPool(connection.Pool(limit=32), limit=32)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = json.loads(environ["wsgi.input"].read(length))
        node_id = f"node-{uuid.uuid4().hex}"
        with engine.begin() as session:
            session.execute(insert(BARE).values(id=node_id, body=json.dumps(body)))
        with producers.acquire(block=True) as producer:
            producer.publish(
                {"node_id": node_id},
                exchange=EXCHANGE,
                routing_key="bare",
                declare=[QUEUE],
                serializer="json",
                delivery_mode=2,
            )
        payload = json.dumps({"node": {"id": node_id}}).encode()
        start_response(
            "202 Accepted",
            [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))],
        )
        return [payload]

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database", required=True)
    parser.add_argument("--broker", required=True)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--threads", type=int, default=16)
    args = parser.parse_args()
    server = WSGIServer(
        listen(args.bind), make_app(args.database, args.broker), numthreads=args.threads
    )
    server.safe_start()


if __name__ == "__main__":
    main()
