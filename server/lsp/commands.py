"""The commands the server registers, and sends in code lenses and code actions (arguments in order).

- `remap.train` (uri, model names): queue the models; a failed or cancelled training is queued again.
- `remap.enqueue` (uri, model names, or the token of a resolved code action): queue children an applied
  code action added; a code action carries it when `auto_train` is on.
- `remap.ablate` (uri, model, [layer indices]) and `remap.vary` (uri, model, [n]): compute the children,
  send them with `workspace/applyEdit`, and queue them when `auto_train` is on.
- `remap.overviewUrl` ([uri]): the address of a `remap serve` running on the store of the document (or of the
  workspace), or null when none runs; the editor's "Open model overview" opens it rather than starting another.
"""

TRAIN = "remap.train"
ENQUEUE = "remap.enqueue"
ABLATE = "remap.ablate"
VARY = "remap.vary"
OVERVIEW_URL = "remap.overviewUrl"
