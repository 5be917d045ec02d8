"""`loopwright serve-model`: the HTTP endpoint in front of the registry (`app.create_app`)."""
