/** An expectation of the demo that did not hold: the demo stops, cleans up and exits 1 with this message. */
export class DemoFailure extends Error {
  override readonly name = 'DemoFailure';
}

/** Ctrl-C or SIGTERM: the demo stops, cleans up and exits 130. */
export class DemoInterrupted extends Error {
  override readonly name = 'DemoInterrupted';
}
