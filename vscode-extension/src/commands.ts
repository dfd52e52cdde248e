// The palette commands that talk to the language server or run the remap command line.

import { execFile } from "node:child_process";
import * as path from "node:path";
import * as vscode from "vscode";
import { ExecuteCommandRequest } from "vscode-languageclient/node";
import { modelAtLine, withStore } from "./logic";
import { invocation, RemapServer, storePath, workspaceFolder } from "./server";

/** "Train model at cursor": asks the server to queue the model whose block holds the cursor. */
export async function trainModelAtCursor(server: RemapServer): Promise<void> {
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.languageId !== "remap") {
    void vscode.window.showInformationMessage("remap: open a .remap file and put the cursor inside a model.");
    return;
  }
  const model = modelAtLine(editor.document.getText(), editor.selection.active.line);
  if (!model) {
    void vscode.window.showInformationMessage("remap: the cursor is not inside a model (a `model NAME:` block).");
    return;
  }
  const client = server.client;
  if (!client?.isRunning()) {
    const choice = await vscode.window.showErrorMessage("remap: the language server is not running.", "Restart");
    if (choice) {
      await server.restart();
    }
    return;
  }
  try {
    await client.sendRequest(ExecuteCommandRequest.type, {
      command: "remap.train",
      arguments: [editor.document.uri.toString(), [model]],
    });
    vscode.window.setStatusBarMessage(`remap: queued ${model} for training`, 5000);
  } catch (error) {
    void vscode.window.showErrorMessage(`remap: could not train ${model}: ${String((error as Error).message ?? error)}`);
  }
}

/** "Show training queue": `remap queue list` for the workspace's store, in its own output channel. */
export async function showQueue(channel: vscode.OutputChannel): Promise<void> {
  const how = await invocation();
  const document = vscode.window.activeTextEditor?.document;
  const cwd = document?.languageId === "remap" && document.uri.scheme === "file"
    ? path.dirname(document.uri.fsPath)
    : workspaceFolder();
  const args = [...how.prefix.slice(1), ...withStore(["queue", "list"], storePath())];
  channel.clear();
  channel.appendLine(`$ ${how.prefix[0]} ${args.join(" ")}`);
  channel.show(true);
  await new Promise<void>((resolve) => {
    execFile(how.prefix[0], args, { cwd, timeout: 60_000 }, (error, stdout, stderr) => {
      channel.append(stdout);
      channel.append(stderr);
      if (error && !stderr) {
        channel.appendLine(`remap: ${error.message}`);
      }
      resolve();
    });
  });
}
