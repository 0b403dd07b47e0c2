#!/usr/bin/env bash
# A throwaway S3-compatible server for the artifact-store tests: moto's server (pinned in
# .ci/python-requirements.txt; it honours conditional puts) on a free loopback port, with one
# bucket, `regimen-test`.
#
#   bash .ci/s3.sh start DIR PYTHON   # prints the endpoint, e.g. http://127.0.0.1:41234
#   bash .ci/s3.sh stop DIR
set -euo pipefail
action="${1:?start or stop}"
dir="${2:?a folder for the pid and log of the server}"
case "$action" in
start)
    python="${3:?the python of the venv}"
    mkdir -p "$dir"
    port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$(dirname "$python")/moto_server" -H 127.0.0.1 -p "$port" >"$dir/server.log" 2>&1 &
    echo $! >"$dir/pid"
    endpoint="http://127.0.0.1:$port"
    "$python" - "$endpoint" >&2 <<'PY'
import sys, time, boto3, botocore
endpoint = sys.argv[1]
s3 = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="test", aws_secret_access_key="test",
                  region_name="us-east-1")
for attempt in range(200):
    try:
        s3.create_bucket(Bucket="regimen-test")
        break
    except botocore.exceptions.EndpointConnectionError:
        time.sleep(0.1)
else:
    sys.exit(f"the S3 server at {endpoint} did not start")
PY
    echo "$endpoint"
    ;;
stop)
    if [ -f "$dir/pid" ]; then
        kill "$(cat "$dir/pid")" 2>/dev/null || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start DIR PYTHON | stop DIR" >&2
    exit 2
    ;;
esac
