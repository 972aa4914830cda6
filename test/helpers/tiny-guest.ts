/** The tiny real Linux guest lives with the demo (src/cli/demo); the tests use the same builder. */
export * from '../../src/cli/demo/tiny-guest.js';
