import { commonV1, trainerV1 } from '@mstar/contracts';
import { createClient, promiseClient, type CreateClientOptions, type UnaryCallOptions } from '@mstar/grpc';

/** `createClient` options of @mstar/grpc; each defaults to DEFAULT_TRAINER_CLIENT_OPTIONS. */
export type TrainerClientOptions = Partial<CreateClientOptions>;

/** A typed client of the trainer service (the CLI, the balancer's reports, tests). */
export interface TrainerClient {
  getTrainingStatus(runId: string, options?: UnaryCallOptions): Promise<trainerV1.GetTrainingStatusResponse>;
  /** The run's checkpoints of `kind` (both kinds when omitted), policy first, then by version. */
  listCheckpoints(runId: string, kind?: commonV1.CheckpointKind, options?: UnaryCallOptions): Promise<commonV1.Checkpoint[]>;
  getCheckpoint(ref: commonV1.CheckpointRef, options?: UnaryCallOptions): Promise<commonV1.Checkpoint>;
  close(): void;
}

/** Defaults: 10 s per call (every answer comes from memory or a few artifact reads). */
export const DEFAULT_TRAINER_CLIENT_OPTIONS: CreateClientOptions = { deadlineMs: 10_000 };

/** Connects to `address` (`host:port`); every call carries a deadline and UNAVAILABLE is retried (see @mstar/grpc). */
export function createTrainerClient(address: string, options: TrainerClientOptions = {}): TrainerClient {
  const raw = createClient(trainerV1.TrainerServiceClient, address, { ...DEFAULT_TRAINER_CLIENT_OPTIONS, ...options });
  const unary = promiseClient(raw);
  return {
    getTrainingStatus: (runId, callOptions) => unary.getTrainingStatus({ runId }, callOptions),
    async listCheckpoints(runId, kind = commonV1.CheckpointKind.UNSPECIFIED, callOptions) {
      return (await unary.listCheckpoints({ runId, kind }, callOptions)).checkpoints;
    },
    async getCheckpoint(ref, callOptions) {
      const { checkpoint } = await unary.getCheckpoint({ ref }, callOptions);
      if (checkpoint === undefined) throw new Error('GetCheckpoint answered without a checkpoint');
      return checkpoint;
    },
    close: () => raw.close(),
  };
}
