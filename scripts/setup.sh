#!/usr/bin/env bash
# Set up klmtui in ./.venv on a fresh machine.
#   bash scripts/setup.sh          # the app: torch, textual, paramiko, ...
#   bash scripts/setup.sh --test   # plus the test tools, Ray, and (as root) openssh-server + tmux
# Environment: PYTHON (default python3), KLMTUI_TORCH (pip spec for torch/torchvision, overrides the pins).
set -euo pipefail
cd "$(dirname "$0")/.."

with_tests=0
case "${1:-}" in
  --test) with_tests=1 ;;
  "") ;;
  *) echo "usage: bash scripts/setup.sh [--test]" >&2; exit 2 ;;
esac

if (( with_tests )) && { [ ! -x /usr/sbin/sshd ] || ! command -v tmux >/dev/null; }; then
  # The SSH integration tests start a real sshd on loopback; the TUI is checked once in tmux.
  if [ "$(id -u)" = 0 ]; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server tmux >/dev/null
  else
    echo "note: install openssh-server and tmux (sudo apt-get install openssh-server tmux) for the SSH tests" >&2
  fi
fi

build_venv36() {
  # A Jetson Nano runs the agent on Python 3.6 + torch 1.10 (JetPack 4.6). Where a Python 3.6 exists,
  # build .venv36 with torch 1.10 so the tests run the real agent on it; elsewhere that test is skipped.
  local py36
  py36=$(ls "$HOME"/.pyenv/versions/3.6*/bin/python3.6 2>/dev/null | head -n 1 || true)
  [ -n "$py36" ] || py36=$(command -v python3.6 || true)
  if [ -n "$py36" ] && ! .venv36/bin/python -c "import torch" 2>/dev/null; then
    rm -rf .venv36
    if ! { "$py36" -m venv .venv36 &&
           .venv36/bin/pip install -q --disable-pip-version-check torch==1.10.2 typing-extensions==4.1.1 dataclasses==0.8; }; then
      echo "note: could not build .venv36 (Python 3.6 + torch 1.10); the agent's Jetson-interpreter test is skipped" >&2
      rm -rf .venv36
    fi
  fi
}

# .venv36 is independent of .venv: build it alongside (pip is mostly one core unpacking wheels;
# two installs at once use both), its output kept apart and shown after .venv's.
venv36_pid=
if (( with_tests )); then
  venv36_log=$(mktemp)
  build_venv36 >"$venv36_log" 2>&1 &
  venv36_pid=$!
  trap '[ -z "$venv36_pid" ] || kill "$venv36_pid" 2>/dev/null || true' EXIT  # .venv failed: stop it too
fi

python=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$python" -m venv .venv
pip=(.venv/bin/python -m pip --disable-pip-version-check -q)

# PyTorch: the pins known to work here (x86_64: a CUDA build that also runs on CPU; aarch64: CPU build).
if [ -n "${KLMTUI_TORCH:-}" ]; then
  read -r -a torch_spec <<<"$KLMTUI_TORCH"
else
  case "$(uname -m)" in
    x86_64) torch_spec=(torch==2.14.1 torchvision==0.29.1) ;;
    aarch64) torch_spec=(torch==2.9.1 torchvision==0.24.1) ;;
    *) torch_spec=(torch torchvision) ;;
  esac
fi
"${pip[@]}" install "${torch_spec[@]}"

if (( with_tests )); then
  "${pip[@]}" install -e ".[test,ray]"
  wait "$venv36_pid" || true  # build_venv36 never fails the setup: it says why and the test is skipped
  venv36_pid=
  cat "$venv36_log" >&2
  rm -f "$venv36_log"
else
  "${pip[@]}" install -e .
fi
echo "klmtui is set up in .venv ($(.venv/bin/python -c 'import torch; print("torch", torch.__version__)'))"
