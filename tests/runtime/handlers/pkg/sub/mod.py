def func(payload):
    return {"from": "pkg.sub.mod.func", "payload": payload}


class Model:
    def __init__(self):
        self.name = "model"

    def predict(self, payload):
        return {"from": self.name, "payload": payload}
