// Chooses the Python (or command) that runs remapdsl, checks it, and starts `remap lsp` as a language client.

import { spawn } from "node:child_process";
import * as os from "node:os";
import * as path from "node:path";
import * as vscode from "vscode";
import { LanguageClient, LanguageClientOptions, ServerOptions } from "vscode-languageclient/node";
import { CHECK_ARGS, CheckResult, checkMessage, chooseInvocation, classifyCheck, expandPath, Invocation } from "./logic";

export const QUEUE_PROGRESS = "remap/queueProgress";

/** The part of the Python extension's API used here; every member may be missing in some version. */
interface PythonApi {
  environments?: {
    getActiveEnvironmentPath(resource?: vscode.Uri): { path: string } | undefined;
    resolveEnvironment(env: { path: string }): Promise<{ executable: { uri?: vscode.Uri } } | undefined>;
  };
}

export function workspaceFolder(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

/** A path setting with `~` and `${workspaceFolder}` expanded. */
export function pathSetting(value: string): string {
  return expandPath(value, os.homedir(), workspaceFolder());
}

/** The `remap.store.path` setting made absolute (relative paths are in the workspace folder); empty: the default. */
export function storePath(): string {
  const store = pathSetting(vscode.workspace.getConfiguration("remap").get<string>("store.path", ""));
  const folder = workspaceFolder();
  return store && folder ? path.resolve(folder, store) : store;
}

/** The active interpreter of the Python extension, if it is installed and answers within a few seconds. */
async function activePython(resource?: vscode.Uri): Promise<string | undefined> {
  const extension = vscode.extensions.getExtension<PythonApi>("ms-python.python");
  if (!extension) {
    return undefined;
  }
  try {
    const timeout = new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 10_000));
    const api = extension.isActive ? extension.exports : await Promise.race([extension.activate(), timeout]);
    const envs = api?.environments;
    const active = envs?.getActiveEnvironmentPath(resource);
    if (!envs || !active) {
      return undefined;
    }
    const resolved = await envs.resolveEnvironment(active);
    return resolved?.executable.uri?.fsPath ?? active.path;
  } catch {
    return undefined;
  }
}

/** How to run remapdsl with the current settings. */
export async function invocation(): Promise<Invocation> {
  const config = vscode.workspace.getConfiguration("remap.server");
  const command = config.get<string[]>("command", []).map(pathSetting);
  const interpreter = pathSetting(config.get<string>("interpreter", ""));
  const fromExtension = command.length || interpreter ? undefined : await activePython();
  return chooseInvocation(command, interpreter, fromExtension);
}

/** Runs `<python> -m remapdsl lsp --help`: the interpreter runs, remapdsl imports, and it has `remap lsp`. */
export function checkServer(python: string): Promise<{ result: CheckResult; output: string }> {
  return new Promise((resolve) => {
    let output = "";
    const child = spawn(python, CHECK_ARGS, { stdio: ["ignore", "pipe", "pipe"], timeout: 30_000 });
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.on("error", (error: NodeJS.ErrnoException) => resolve({ result: classifyCheck(null, error.code, output), output }));
    child.on("close", (code) => resolve({ result: classifyCheck(code, undefined, output), output }));
  });
}

/** The settings the server reads at start; it asks for section `remap` again when they change. */
function initializationOptions(): Record<string, unknown> {
  const config = vscode.workspace.getConfiguration("remap");
  return {
    storePath: storePath() || null,
    autoTrain: config.get<boolean>("training.autoTrain", true),
    startWorker: config.get<boolean>("training.startWorker", false),
    hoverImages: config.get<boolean>("hover.images", true),
  };
}

async function offerSettings(message: string, log: vscode.OutputChannel): Promise<void> {
  const choice = await vscode.window.showErrorMessage(message, "Open Settings", "Show Log");
  if (choice === "Open Settings") {
    await vscode.commands.executeCommand("workbench.action.openSettings", "remap.server");
  } else if (choice === "Show Log") {
    log.show();
  }
}

/** The language client: started, stopped and restarted one step at a time. */
export class RemapServer implements vscode.Disposable {
  client: LanguageClient | undefined;
  private queue: Promise<void> = Promise.resolve();

  constructor(private readonly log: vscode.OutputChannel, private readonly onProgress: (params: unknown) => void) {}

  start(): Promise<void> {
    return this.enqueue(() => this.doStart());
  }

  stop(): Promise<void> {
    return this.enqueue(() => this.doStop());
  }

  restart(): Promise<void> {
    return this.enqueue(async () => {
      await this.doStop();
      await this.doStart();
    });
  }

  dispose(): void {
    void this.stop();
  }

  private enqueue(step: () => Promise<void>): Promise<void> {
    this.queue = this.queue.then(step, step);
    return this.queue;
  }

  private async doStart(): Promise<void> {
    const how = await invocation();
    if (how.python) {
      const check = await checkServer(how.python);
      if (check.result !== "ok") {
        const message = checkMessage(check.result, how.python, how.source, check.output);
        this.log.appendLine(`${how.python} ${CHECK_ARGS.join(" ")}\n${check.output.trim()}\n${message}`);
        void offerSettings(message, this.log);
        return;
      }
    }
    this.log.appendLine(`Starting the language server (from ${how.source}): ${how.server.join(" ")}`);
    const serverOptions: ServerOptions = {
      command: how.server[0],
      args: how.server.slice(1),
      options: { cwd: workspaceFolder(), env: { ...process.env, PYTHONUNBUFFERED: "1" } },
    };
    const clientOptions: LanguageClientOptions = {
      documentSelector: [{ language: "remap", scheme: "file" }, { language: "remap", scheme: "untitled" }],
      initializationOptions: initializationOptions(),
      synchronize: { configurationSection: "remap" },
      outputChannel: this.log,
      // SNAC chips arrive as data-URI images in hover markdown.
      markdown: { supportHtml: true },
    };
    let client: LanguageClient | undefined;
    try {
      client = new LanguageClient("remap", "remap language server", serverOptions, clientOptions);
      client.onNotification(QUEUE_PROGRESS, (params: unknown) => this.onProgress(params));
      this.client = client;
      await client.start();
    } catch (error) {
      this.client = undefined;
      await client?.dispose().catch(() => undefined);
      const message = `remap: the language server did not start (${how.server.join(" ")}): ${String(error)}`;
      this.log.appendLine(message);
      void offerSettings(message, this.log);
    }
  }

  private async doStop(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.onProgress(undefined);
    if (client) {
      try {
        await client.dispose(2000);
      } catch (error) {
        this.log.appendLine(`Stopping the language server: ${String(error)}`);
      }
    }
  }
}
