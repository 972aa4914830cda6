/** Power cuts on XFS (issue 10, item 12): see suite.ts and test/helpers/power-cut/. */
import { powerCutSuite } from './suite.js';

powerCutSuite('xfs');
