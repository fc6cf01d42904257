#!/usr/bin/env bash
# Generates the Python stubs from ../../proto into ./gen (not committed: run this after
# changing a .proto). Needs `pip install -r requirements.txt`.
set -euo pipefail
cd "$(dirname "$0")"
rm -rf gen
mkdir -p gen
python3 -m grpc_tools.protoc \
  --proto_path=../../proto \
  --python_out=gen --pyi_out=gen --grpc_python_out=gen \
  bookstore/auth/v1/auth.proto bookstore/book/v1/book.proto
echo "generated stubs in $(pwd)/gen"
