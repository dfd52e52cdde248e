import * as assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  checkMessage,
  chooseInvocation,
  classifyCheck,
  expandPath,
  findUrl,
  modelAtLine,
  queueStatus,
  readQueueProgress,
  runningOverviewUrl,
  serveFailureMessage,
  withStore,
} from "../logic";

const DOC = [
  "# digits.remap", //                          0
  "data digits", //                             1
  "train epochs=10", //                         2
  "", //                                        3
  "# A baseline.", //                           4
  "model small:", //                            5
  "    conv2d 16 kernel=3", //                  6
  "    dense 10", //                            7
  "", //                                        8
  "model small_wide from small:  # wider", //   9
  "    conv2d 32 kernel=3  @keep", //           10
  "    # model not_a_model:", //                11
  "    dense 10", //                            12
  "model größe-v1.2:", //                       13
  "    flatten", //                             14
].join("\n");

describe("modelAtLine", () => {
  it("finds the model whose block holds the line", () => {
    assert.equal(modelAtLine(DOC, 5), "small");
    assert.equal(modelAtLine(DOC, 7), "small");
    assert.equal(modelAtLine(DOC, 8), "small");
    assert.equal(modelAtLine(DOC, 9), "small_wide");
    assert.equal(modelAtLine(DOC, 12), "small_wide");
  });

  it("ignores model lines in comments", () => {
    assert.equal(modelAtLine(DOC, 11), "small_wide");
  });

  it("reads names with any letters, dashes and dots", () => {
    assert.equal(modelAtLine(DOC, 14), "größe-v1.2");
  });

  it("finds no model in the header or past the text", () => {
    assert.equal(modelAtLine(DOC, 0), undefined);
    assert.equal(modelAtLine(DOC, 2), undefined);
    assert.equal(modelAtLine(DOC, 4), undefined);
    assert.equal(modelAtLine(DOC, 99), "größe-v1.2");
    assert.equal(modelAtLine("", 0), undefined);
  });

  it("handles Windows line ends and a model line without its colon yet", () => {
    assert.equal(modelAtLine("model a\r\n    relu\r\n", 1), "a");
  });
});

describe("chooseInvocation", () => {
  it("defaults to python3 -m remapdsl lsp", () => {
    const how = chooseInvocation([], "");
    assert.deepEqual(how.server, ["python3", "-m", "remapdsl", "lsp"]);
    assert.deepEqual(how.prefix, ["python3", "-m", "remapdsl"]);
    assert.equal(how.python, "python3");
    assert.equal(how.source, "the default python3");
  });

  it("prefers the interpreter setting to the Python extension", () => {
    const how = chooseInvocation([], " /venv/bin/python ", "/conda/bin/python");
    assert.deepEqual(how.server, ["/venv/bin/python", "-m", "remapdsl", "lsp"]);
    assert.equal(how.source, "remap.server.interpreter");
  });

  it("uses the Python extension's environment when no setting is given", () => {
    const how = chooseInvocation([], "", "/conda/bin/python");
    assert.equal(how.python, "/conda/bin/python");
    assert.equal(how.source, "the Python extension");
  });

  it("runs the command setting as given, and its words before lsp for the other commands", () => {
    const how = chooseInvocation(["/venv/bin/remap", "lsp", ""], "/usr/bin/python3");
    assert.deepEqual(how.server, ["/venv/bin/remap", "lsp"]);
    assert.deepEqual(how.prefix, ["/venv/bin/remap"]);
    assert.equal(how.python, undefined);
    assert.equal(how.source, "remap.server.command");
  });

  it("checks the Python of a `python -m remapdsl lsp` command", () => {
    const how = chooseInvocation(["/p/python", "-m", "remapdsl", "lsp", "--log-level", "debug"], "");
    assert.equal(how.python, "/p/python");
    assert.deepEqual(how.prefix, ["/p/python", "-m", "remapdsl"]);
  });

  it("leaves the other commands to the interpreter when the command has no lsp argument", () => {
    const how = chooseInvocation(["my-remap-server"], "/venv/bin/python");
    assert.deepEqual(how.server, ["my-remap-server"]);
    assert.deepEqual(how.prefix, ["/venv/bin/python", "-m", "remapdsl"]);
    assert.equal(how.python, undefined);
  });
});

describe("expandPath", () => {
  it("expands ~ and ${workspaceFolder}", () => {
    assert.equal(expandPath("~/venv/bin/python", "/home/u"), "/home/u/venv/bin/python");
    assert.equal(expandPath("${workspaceFolder}/.venv/bin/python", "/home/u", "/w"), "/w/.venv/bin/python");
    assert.equal(expandPath("~user/python", "/home/u"), "~user/python");
    assert.equal(expandPath("", "/home/u", "/w"), "");
  });
});

describe("checking the interpreter", () => {
  it("reads the outcome of `python -m remapdsl lsp --help`", () => {
    assert.equal(classifyCheck(0, undefined, "usage: remap lsp [-h]"), "ok");
    assert.equal(classifyCheck(null, "ENOENT", ""), "not-found");
    assert.equal(classifyCheck(1, undefined, "/usr/bin/python3: No module named remapdsl\n"), "not-installed");
    assert.equal(classifyCheck(2, undefined, "remap: error: argument COMMAND: invalid choice: 'lsp' (choose from"),
      "no-lsp");
    assert.equal(classifyCheck(1, undefined, "ModuleNotFoundError: No module named 'pygls'\n"), "broken");
    assert.equal(classifyCheck(1, undefined, "No module named 'remapdsl.cli.lsp'"), "broken");
  });

  it("names the interpreter and the install command", () => {
    const message = checkMessage("not-installed", "/venv/bin/python", "remap.server.interpreter");
    assert.match(message, /remapdsl is not installed for `\/venv\/bin\/python` \(from remap\.server\.interpreter\)/);
    assert.match(message, /\/venv\/bin\/python -m pip install remapdsl/);
  });

  it("says when the interpreter cannot run, remapdsl is too old, or the server fails", () => {
    assert.match(checkMessage("not-found", "python3", "the default python3"), /cannot run `python3`/);
    assert.match(checkMessage("no-lsp", "python3", "the default python3"), /pip install -U remapdsl/);
    assert.match(checkMessage("broken", "python3", "the default python3", "Traceback\nImportError: pygls\n"),
      /fails: ImportError: pygls/);
  });
});

describe("queue status", () => {
  const idle = { queued: 0, running: 0, done: 5, failed: 1, current: null };

  it("is hidden when nothing is queued or running", () => {
    assert.equal(queueStatus(idle), undefined);
  });

  it("shows the current model's epoch and the queue length", () => {
    const status = queueStatus({ ...idle, queued: 4, running: 1, current: { model: "M", epoch: 3, epochs: 10 } });
    assert.equal(status?.text, "$(beaker) M 3/10 · 4 queued");
    assert.match(status?.tooltip ?? "", /1 running, 4 queued, 5 done, 1 failed/);
  });

  it("shows running jobs without a current model, and a queue alone", () => {
    assert.equal(queueStatus({ ...idle, running: 2 })?.text, "$(beaker) 2 training");
    assert.equal(queueStatus({ ...idle, queued: 3 })?.text, "$(beaker) 3 queued");
  });

  it("reads malformed notifications without throwing", () => {
    assert.equal(readQueueProgress(null), undefined);
    assert.equal(readQueueProgress("x"), undefined);
    assert.deepEqual(readQueueProgress({ queued: "2", running: 1.7, current: { model: 3 } }),
      { queued: 0, running: 1, done: 0, failed: 0, current: null });
    assert.deepEqual(readQueueProgress({ running: 1, current: { model: "m", epoch: 2 } })?.current,
      { model: "m", epoch: 2, epochs: 0 });
    assert.equal(queueStatus(readQueueProgress({ running: 1, current: { model: "m" } })!)?.text, "$(beaker) m");
  });
});

describe("running overview", () => {
  it("takes an http(s) address from the language server's answer", () => {
    assert.equal(runningOverviewUrl("http://127.0.0.1:5006/"), "http://127.0.0.1:5006/");
    assert.equal(runningOverviewUrl("https://host.example:8443/app"), "https://host.example:8443/app");
  });
  it("takes nothing else", () => {
    for (const answer of [null, undefined, 42, "", "not a url", "javascript:alert(1)", "file:///etc/passwd", {}]) {
      assert.equal(runningOverviewUrl(answer), undefined);
    }
  });
});

describe("overview output", () => {
  it("finds the server's address", () => {
    assert.equal(findUrl("2026-01-01 INFO Bokeh app running at: http://localhost:5123/overview\n"),
      "http://localhost:5123/overview");
    assert.equal(findUrl("open http://127.0.0.1:8000/."), "http://127.0.0.1:8000/");
    assert.equal(findUrl("starting..."), undefined);
  });

  it("explains a remapdsl without the serve command", () => {
    const stderr = "remap: error: argument COMMAND: invalid choice: 'serve' (choose from 'check', 'fmt')\n";
    assert.match(serveFailureMessage(2, stderr), /no `remap serve` command/);
  });

  it("quotes the last line of other failures", () => {
    assert.equal(serveFailureMessage(1, "Traceback\nImportError: no bokeh\n\n"),
      "remap: the overview server (remap serve) exited with code 1: ImportError: no bokeh");
  });
});

describe("withStore", () => {
  it("adds --store only when a store path is set", () => {
    assert.deepEqual(withStore(["queue", "list"], ""), ["queue", "list"]);
    assert.deepEqual(withStore(["queue", "list"], "/w/s.db"), ["queue", "list", "--store", "/w/s.db"]);
  });
});
