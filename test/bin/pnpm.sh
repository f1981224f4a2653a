# Sourced by the other scripts: sets PNPM to the pinned pnpm (root package.json "packageManager"),
# using a global pnpm only when it is exactly that version, else fetching it from the npm registry.
want=$(node -p "require('./package.json').packageManager.split('@')[1]")
if command -v pnpm >/dev/null 2>&1 && [ "$(pnpm --version 2>/dev/null)" = "$want" ]; then
  PNPM="pnpm"
else
  PNPM="npx --yes pnpm@$want"
fi
export PNPM
