class NeedsArgs:
    def __init__(self, model_path, device="cpu"):
        self.model_path = model_path

    def process(self, payload):
        return payload


class InitFails:
    def __init__(self):
        raise RuntimeError("cannot load model")

    def process(self, payload):
        return payload


class ExitsInInit:
    def __init__(self):
        raise SystemExit("no config")

    def process(self, payload):
        return payload
