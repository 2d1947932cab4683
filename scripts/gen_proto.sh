#!/usr/bin/env bash
# Regenerate the gRPC stubs of conveyor.executor.v1 from src/conveyor/executors/proto/.
#
# The proto directory is mapped onto the virtual path conveyor/executors/grpc_pb so that the
# generated executor_pb2_grpc.py imports its messages as conveyor.executors.grpc_pb.executor_pb2
# (an absolute import that works from the installed package), without editing generated code.
# Needs grpcio-tools (a dev dependency): `pip install -e '.[dev]'`.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-.venv/bin/python}"
[ -x "$PYTHON" ] || PYTHON=python3
OUT=src
PROTO_DIR=src/conveyor/executors/proto
"$PYTHON" -m grpc_tools.protoc \
    "-Iconveyor/executors/grpc_pb=$PROTO_DIR" \
    --python_out="$OUT" \
    --pyi_out="$OUT" \
    --grpc_python_out="$OUT" \
    "$PROTO_DIR/executor.proto"
# Generated code is not held to our lint rules; mypy skips it through pyproject's overrides.
for file in src/conveyor/executors/grpc_pb/executor_pb2*.py*; do
    { echo "# ruff: noqa"; cat "$file"; } > "$file.tmp" && mv "$file.tmp" "$file"
done
echo '"""Generated gRPC stubs of conveyor.executor.v1 (scripts/gen_proto.sh); do not edit."""' \
    > src/conveyor/executors/grpc_pb/__init__.py
echo "regenerated src/conveyor/executors/grpc_pb/ from $PROTO_DIR/executor.proto"
