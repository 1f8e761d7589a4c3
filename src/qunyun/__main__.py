from qunyun.cli.main import app

app(prog_name="qunyun")
