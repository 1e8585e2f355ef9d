import { InvalidArgumentError } from '@mstar/errors';

/** Raised when a metric or selection rule is called with arguments it cannot give a meaning to. */
export class MetricsError extends InvalidArgumentError {}
