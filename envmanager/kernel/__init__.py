"""The kernel: what every app may stand on (errors, encryption, JSON limits, the API's error
shape and base fields). It imports no app of ours; everything else may import it."""
