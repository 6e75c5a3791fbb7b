#!/bin/sh
# Start the demo app in the background, bound to this node's own address
# (the address this SSH session came in on), and note its pid.
set -eu
BIND=$(echo "$SSH_CONNECTION" | cut -d' ' -f3)
export BIND
setsid python3 "demo-$NODE_NAME-app.py" </dev/null >"demo-$NODE_NAME.log" 2>&1 &
echo $! > "demo-$NODE_NAME.pid"
echo "started $NODE_NAME on $BIND:$PORT"
