// "Open model overview": opens the `remap serve` already running on the store (as the language server reads it
// from the store), or else starts one for the workspace once, and opens its address in the browser.

import { ChildProcess, spawn } from "node:child_process";
import * as net from "node:net";
import * as vscode from "vscode";
import { ExecuteCommandRequest } from "vscode-languageclient/node";
import { findUrl, runningOverviewUrl, serveFailureMessage, withStore } from "./logic";
import { invocation, RemapServer, storePath, workspaceFolder } from "./server";

const START_TIMEOUT_MS = 60_000;

/** A port nobody listens on right now, for `remap serve --port`. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once("error", reject);
    probe.listen(0, "127.0.0.1", () => {
      const address = probe.address();
      probe.close(() => (typeof address === "object" && address ? resolve(address.port) : reject(new Error("no port"))));
    });
  });
}

export class Overview implements vscode.Disposable {
  private process: ChildProcess | undefined;
  private url: Promise<string> | undefined;

  constructor(private readonly log: vscode.OutputChannel, private readonly server: RemapServer) {}

  async open(): Promise<void> {
    if (!this.url) {
      const running = await this.running();
      if (running) {
        this.log.appendLine(`Opening the overview already running at ${running}`);
        await vscode.env.openExternal(await vscode.env.asExternalUri(vscode.Uri.parse(running)));
        return;
      }
    }
    this.url ??= this.start();
    try {
      const url = await vscode.window.withProgress(
        { location: vscode.ProgressLocation.Window, title: "remap: starting the model overview" },
        () => this.url as Promise<string>,
      );
      await vscode.env.openExternal(await vscode.env.asExternalUri(vscode.Uri.parse(url)));
    } catch (error) {
      this.url = undefined;
      const choice = await vscode.window.showErrorMessage(String((error as Error).message ?? error), "Show Log");
      if (choice) {
        this.log.show();
      }
    }
  }

  /** The address of a `remap serve` running on the store, asked of the language server; undefined when none
   * runs or the server cannot say. */
  private async running(): Promise<string | undefined> {
    const client = this.server.client;
    if (!client?.isRunning()) {
      return undefined;
    }
    const document = vscode.window.activeTextEditor?.document;
    const args = document?.languageId === "remap" ? [document.uri.toString()] : [];
    try {
      return runningOverviewUrl(await client.sendRequest(ExecuteCommandRequest.type,
        { command: "remap.overviewUrl", arguments: args }));
    } catch (error) {
      this.log.appendLine(`Could not ask for a running overview: ${String((error as Error).message ?? error)}`);
      return undefined;
    }
  }

  private async start(): Promise<string> {
    const how = await invocation();
    const port = await freePort();
    const args = [...how.prefix.slice(1), ...withStore(["serve", "--port", String(port)], storePath())];
    this.log.appendLine(`Starting the overview: ${how.prefix[0]} ${args.join(" ")}`);
    const child = spawn(how.prefix[0], args, { cwd: workspaceFolder(), env: { ...process.env, PYTHONUNBUFFERED: "1" } });
    this.process = child;
    return new Promise<string>((resolve, reject) => {
      let output = "";
      const timer = setTimeout(() => resolve(`http://localhost:${port}/`), START_TIMEOUT_MS);
      const read = (chunk: Buffer): void => {
        const text = chunk.toString();
        this.log.append(text);
        output += text;
        const url = findUrl(output);
        if (url) {
          clearTimeout(timer);
          resolve(url);
        }
      };
      child.stdout?.on("data", read);
      child.stderr?.on("data", read);
      child.on("error", (error) => {
        clearTimeout(timer);
        reject(new Error(`remap: cannot run ${how.prefix[0]} for the overview (${error.message}). ` +
          "Check the remap.server.interpreter setting."));
      });
      child.on("exit", (code) => {
        clearTimeout(timer);
        this.process = undefined;
        this.url = undefined;
        this.log.appendLine(`The overview server exited (code ${code}).`);
        reject(new Error(serveFailureMessage(code, output)));
      });
    });
  }

  dispose(): void {
    this.process?.kill();
  }
}
