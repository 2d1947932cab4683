"""A tiny gRPC business service that Conveyor's ``grpc`` executor calls.

Run it with one command from the repository root::

    .venv/bin/python examples/grpc_server/server.py --port 50051

It implements ``conveyor.executor.v1.Executor/Execute`` (``src/conveyor/executors/proto/
executor.proto``) with the stubs shipped in ``conveyor.executors.grpc_pb``; the task type
picks the behaviour.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging

import grpc
import grpc.aio

from conveyor.executors.grpc_pb import executor_pb2, executor_pb2_grpc

Response = executor_pb2.ExecuteResponse


class Executor(executor_pb2_grpc.ExecutorServicer):
    """``resize-image`` succeeds, ``charge`` fails for good, ``flaky`` is UNAVAILABLE once."""

    async def Execute(
        self, request: executor_pb2.ExecuteRequest, context: grpc.aio.ServicerContext
    ) -> Response:
        metadata = dict(context.invocation_metadata() or ())
        payload = json.loads(request.payload_json or "{}")
        logging.info("task %s attempt %d key %s", request.task_id, request.attempt,
                     metadata.get("idempotency-key"))
        if request.task_type == "resize-image":
            width = int(payload.get("width", 100))
            return Response(success=True, data_json=json.dumps({"width": width, "ok": True}))
        if request.task_type == "charge":
            return Response(success=False, error="card declined", retryable=False)
        if request.task_type == "flaky" and request.attempt == 1:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "warming up, try again")
        if request.task_type in ("flaky", "echo"):
            return Response(success=True, data_json=json.dumps(payload))
        await context.abort(grpc.StatusCode.UNIMPLEMENTED, f"no task type {request.task_type}")
        raise AssertionError("abort raises")


async def serve(host: str, port: int) -> None:
    server = grpc.aio.server()
    executor_pb2_grpc.add_ExecutorServicer_to_server(Executor(), server)  # type: ignore[no-untyped-call]
    bound = server.add_insecure_port(f"{host}:{port}")
    await server.start()
    logging.info("conveyor.executor.v1.Executor listening on %s:%d", host, bound)
    try:
        await server.wait_for_termination()
    finally:
        await server.stop(grace=5)


def main() -> None:
    parser = argparse.ArgumentParser(description="example gRPC business service")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=50051)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
