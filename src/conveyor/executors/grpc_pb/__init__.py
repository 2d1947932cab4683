"""Generated gRPC stubs of conveyor.executor.v1 (scripts/gen_proto.sh); do not edit."""
