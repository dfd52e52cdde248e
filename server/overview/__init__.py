"""The model overview: REMAP's main screen as a Bokeh server application, started by `remap serve`.

`app.build_document` fills one browser session's document from `app.PANELS`, a tuple of panel factories. Each
factory takes the session's `state.OverviewState` (the store, the population, the selection, the event bus) and
returns a `state.Panel`: a Bokeh layout and where it goes, the main column beside the scatter or one more tab.
A new panel is one module with a factory and one entry in `PANELS`; panels talk to each other only through
the state's events (`select`, `population`, `classes`, `drawer`, `jobs`), never by importing each other.
`serve.start` runs the Bokeh server; `remapdsl.cli.serve` is its command line.
"""
