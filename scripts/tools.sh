# Sourced by the scripts: a small virtualenv with nox, made once (.venv-tools, git-ignored).
if [ ! -x .venv-tools/bin/nox ]; then
  python3 -m venv .venv-tools
  .venv-tools/bin/pip install -q "nox>=2024.4" >/dev/null
fi
export PATH="$PWD/.venv-tools/bin:$PATH"
