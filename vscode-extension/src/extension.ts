// Entry point: wires the language server, the status bar, the overview and the commands together.

import * as vscode from "vscode";
import { showQueue, trainModelAtCursor } from "./commands";
import { Overview } from "./overview";
import { RemapServer } from "./server";
import { QueueStatusBar } from "./statusBar";

let server: RemapServer | undefined;

export function activate(context: vscode.ExtensionContext): void {
  const log = vscode.window.createOutputChannel("remap");
  const queueChannel = vscode.window.createOutputChannel("remap: training queue");
  const statusBar = new QueueStatusBar("remap.showQueue");
  server = new RemapServer(log, (params) => statusBar.update(params));
  const current = server;
  const overview = new Overview(log, current);
  context.subscriptions.push(
    log,
    queueChannel,
    statusBar,
    overview,
    current,
    vscode.commands.registerCommand("remap.restartServer", () => current.restart()),
    vscode.commands.registerCommand("remap.trainModelAtCursor", () => trainModelAtCursor(current)),
    vscode.commands.registerCommand("remap.showQueue", () => showQueue(queueChannel)),
    vscode.commands.registerCommand("remap.openOverview", () => overview.open()),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration("remap.server")) {
        void current.restart();
      }
    }),
  );
  // Not awaited: checking the interpreter may take seconds, and the commands work meanwhile.
  void current.start();
}

export function deactivate(): Promise<void> | undefined {
  return server?.stop();
}
