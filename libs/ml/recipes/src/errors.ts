import { InvalidArgumentError } from '@mstar/errors';

/** A recipe was called with settings it cannot run (bad sizes, empty data, missing images). */
export class RecipeConfigError extends InvalidArgumentError {}
