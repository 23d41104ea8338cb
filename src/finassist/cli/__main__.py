from finassist.cli import app

app()
