// Plain logic behind the extension, with no `vscode` import so that `node --test` can check it.

/** How to run the `remap` command line: `prefix` followed by a subcommand and its arguments. */
export interface Invocation {
  /** The program and what comes before a subcommand: `[python, "-m", "remapdsl"]` or `["remap"]`. */
  prefix: string[];
  /** The language server's full command. */
  server: string[];
  /** The Python that runs it when known; checked for `remapdsl` before the server starts. */
  python?: string;
  /** Which setting (or fallback) chose it, for messages and the log. */
  source: "remap.server.command" | "remap.server.interpreter" | "the Python extension" | "the default python3";
}

export const DEFAULT_PYTHON = "python3";

/**
 * Chooses how to start the language server: the `remap.server.command` setting, else the
 * `remap.server.interpreter` setting, else the Python extension's active environment, else `python3`.
 * A command's words before its `lsp` argument run the other subcommands (`remap serve`, `remap queue`);
 * a command without `lsp` leaves those to the interpreter chain.
 */
export function chooseInvocation(command: readonly string[], interpreter: string, activePython?: string): Invocation {
  const words = command.map((w) => w.trim()).filter((w) => w !== "");
  const python = interpreter.trim() || activePython?.trim() || undefined;
  const chain: Invocation = {
    prefix: [python ?? DEFAULT_PYTHON, "-m", "remapdsl"],
    server: [python ?? DEFAULT_PYTHON, "-m", "remapdsl", "lsp"],
    python: python ?? DEFAULT_PYTHON,
    source: interpreter.trim() ? "remap.server.interpreter" : python ? "the Python extension" : "the default python3",
  };
  if (words.length === 0) {
    return chain;
  }
  const lsp = words.indexOf("lsp");
  if (lsp <= 0) {
    return { ...chain, server: words, python: undefined, source: "remap.server.command" };
  }
  const prefix = words.slice(0, lsp);
  const runsModule = prefix.length === 3 && prefix[1] === "-m" && prefix[2] === "remapdsl";
  return { prefix, server: words, python: runsModule ? prefix[0] : undefined, source: "remap.server.command" };
}

/** `~` and `${workspaceFolder}` in a path setting, as the Python extension reads them. */
export function expandPath(path: string, home: string, workspaceFolder?: string): string {
  let out = path.trim();
  if (out === "~" || out.startsWith("~/") || out.startsWith("~\\")) {
    out = home + out.slice(1);
  }
  if (workspaceFolder !== undefined) {
    out = out.split("${workspaceFolder}").join(workspaceFolder);
  }
  return out;
}

/** The arguments that check an interpreter before the server starts: argparse answers `--help` and exits. */
export const CHECK_ARGS = ["-m", "remapdsl", "lsp", "--help"];

export type CheckResult = "ok" | "not-found" | "not-installed" | "no-lsp" | "broken";

/** Reads the outcome of `<python> -m remapdsl lsp --help`: its exit code, spawn error code, and output. */
export function classifyCheck(exitCode: number | null, spawnError: string | undefined, output: string): CheckResult {
  if (spawnError === "ENOENT" || spawnError === "EACCES") {
    return "not-found";
  }
  if (exitCode === 0) {
    return "ok";
  }
  if (/No module named '?remapdsl'?\s*$/m.test(output)) {
    return "not-installed";
  }
  if (/invalid choice: '?lsp'?/.test(output)) {
    return "no-lsp";
  }
  return "broken";
}

/** What to tell the user when the check failed, and how to fix it. */
export function checkMessage(result: CheckResult, python: string, source: Invocation["source"], output = ""): string {
  const where = `\`${python}\` (from ${source})`;
  switch (result) {
    case "not-found":
      return `remap: cannot run ${where} to start the language server. ` +
        "Set `remap.server.interpreter` to a Python that has remapdsl installed.";
    case "not-installed":
      return `remap: remapdsl is not installed for ${where}. Install it with \`${python} -m pip install remapdsl\` ` +
        `(or \`${python} -m pip install -e .\` in a remapdsl checkout), or set \`remap.server.interpreter\` to a ` +
        "Python that has it.";
    case "no-lsp":
      return `remap: the remapdsl installed for ${where} has no language server (\`remap lsp\`). Update it with ` +
        `\`${python} -m pip install -U remapdsl\` (or reinstall your checkout).`;
    default: {
      const last = output.trim().split(/\r?\n/).pop()?.trim();
      return `remap: \`${python} -m remapdsl lsp\` fails${last ? `: ${last}` : ""}. See the remap output for details.`;
    }
  }
}

// The language's NAME token: letters (any script), digits and underscores, inner '-' and '.'.
const WORD = String.raw`[\p{L}\p{N}_]`;
const NAME = String.raw`[\p{L}_]${WORD}*(?:[-.]${WORD}+)*`;
const END = String.raw`(?![-.]?${WORD})`;
const MODEL_LINE = new RegExp(String.raw`^\s*model\s+(${NAME})${END}`, "u");
const HEADER_LINE = new RegExp(String.raw`^\s*(?:data|train|budget)${END}`, "u");

/**
 * The name of the model whose block holds line `line` (0-based) of `text`: the nearest `model NAME` line at
 * or above it. Comments and blank lines below a model belong to it; header lines belong to none.
 */
export function modelAtLine(text: string, line: number): string | undefined {
  const lines = text.split(/\r\n|\r|\n/);
  for (let i = Math.min(line, lines.length - 1); i >= 0; i--) {
    const code = lines[i].replace(/#.*$/, "");
    const model = MODEL_LINE.exec(code);
    if (model) {
      return model[1];
    }
    if (HEADER_LINE.test(code)) {
      return undefined;
    }
  }
  return undefined;
}

/** The params of the server's `remap/queueProgress` notification. */
export interface QueueProgress {
  queued: number;
  running: number;
  done: number;
  failed: number;
  current: { model: string; epoch: number; epochs: number } | null;
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

/** Reads a notification's params, tolerating missing or malformed fields; undefined for a non-object. */
export function readQueueProgress(raw: unknown): QueueProgress | undefined {
  if (typeof raw !== "object" || raw === null) {
    return undefined;
  }
  const p = raw as Record<string, unknown>;
  const c = p.current as Record<string, unknown> | null | undefined;
  const current = typeof c === "object" && c !== null && typeof c.model === "string"
    ? { model: c.model, epoch: count(c.epoch), epochs: count(c.epochs) }
    : null;
  return { queued: count(p.queued), running: count(p.running), done: count(p.done), failed: count(p.failed), current };
}

/** The status bar's text and tooltip, or undefined (hidden) when nothing is queued or running. */
export function queueStatus(p: QueueProgress): { text: string; tooltip: string } | undefined {
  if (p.queued === 0 && p.running === 0) {
    return undefined;
  }
  const parts: string[] = [];
  if (p.current) {
    parts.push(p.current.epochs > 0 ? `${p.current.model} ${p.current.epoch}/${p.current.epochs}` : p.current.model);
  } else if (p.running > 0) {
    parts.push(`${p.running} training`);
  }
  if (p.queued > 0) {
    parts.push(`${p.queued} queued`);
  }
  const tooltip = `remap training queue: ${p.running} running, ${p.queued} queued, ${p.done} done, ` +
    `${p.failed} failed. Click to show the queue.`;
  return { text: `$(beaker) ${parts.join(" · ")}`, tooltip };
}

/** The first http(s) URL in a server's output, without trailing punctuation. */
export function findUrl(output: string): string | undefined {
  const match = /\bhttps?:\/\/[^\s'"<>]+/.exec(output);
  return match ? match[0].replace(/[.,;:)\]]+$/, "") : undefined;
}

/** The address in the language server's answer to `remap.overviewUrl`: an http(s) URL of a `remap serve` already
 * running on the store, or undefined (none runs, or an answer that is not such a URL). */
export function runningOverviewUrl(answer: unknown): string | undefined {
  if (typeof answer !== "string") {
    return undefined;
  }
  try {
    const url = new URL(answer);
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname ? answer : undefined;
  } catch {
    return undefined;
  }
}

/** What to tell the user when `remap serve` stopped before printing its address. */
export function serveFailureMessage(code: number | null, output: string): string {
  if (/invalid choice: '?serve'?/.test(output)) {
    return "remap: the installed remapdsl has no `remap serve` command, so the model overview cannot start. " +
      "The overview server is not released yet; `remap results` and `remap layout` show the same figures in a terminal.";
  }
  const last = output.trim().split(/\r?\n/).filter((l) => l.trim() !== "").pop();
  const why = code === null ? "stopped" : `exited with code ${code}`;
  return `remap: the overview server (remap serve) ${why}${last ? `: ${last.trim()}` : ""}`;
}

/** Arguments after the prefix for a store-aware subcommand, e.g. `queue list --store PATH`. */
export function withStore(args: string[], storePath: string): string[] {
  return storePath ? [...args, "--store", storePath] : args;
}
