// The status bar item that shows training progress from the server's `remap/queueProgress` notification.

import * as vscode from "vscode";
import { queueStatus, readQueueProgress } from "./logic";

export class QueueStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem("remap.queue", vscode.StatusBarAlignment.Left, 10);

  constructor(command: string) {
    this.item.name = "remap training queue";
    this.item.command = command;
  }

  /** Shows the notification's progress; hides the item when nothing is queued or running (or params are bad). */
  update(params: unknown): void {
    const progress = readQueueProgress(params);
    const status = progress && queueStatus(progress);
    if (!status) {
      this.item.hide();
      return;
    }
    this.item.text = status.text;
    this.item.tooltip = status.tooltip;
    this.item.show();
  }

  dispose(): void {
    this.item.dispose();
  }
}
