import { commonV1, runV1, type eventsV1 } from '@mstar/contracts';

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const ref = (r: commonV1.CheckpointRef | undefined): string =>
  r === undefined ? '?' : `${r.kind === commonV1.CheckpointKind.PRM ? 'prm' : 'policy'} v${r.version}`;

/** One human line per pipeline event, for `mstar run watch` and `npm start`. */
export function describeEvent(event: eventsV1.Event): string {
  const p = event.payload;
  switch (p?.$case) {
    case 'runStarted':
      return `run started: ${p.value.spec?.name ?? ''} (${p.value.spec?.iterations ?? 0} iterations)`;
    case 'checkpointPublished': {
      const c = p.value.checkpoint;
      return `checkpoint ${ref(c?.ref)} published (${c?.trainingExamples ?? 0} examples, optimizer step ${c?.optimizerStep ?? 0})`;
    }
    case 'prmDataReady':
      return `PRM data: ${p.value.trajectories} trajectories from ${p.value.prompts} prompts, ${p.value.labelledSteps} labelled steps, ${p.value.rollouts} rollouts, mean label ${p.value.meanStepLabel.toFixed(3)}`;
    case 'temperatureSelected': {
      const s = p.value.sweep;
      const table = p.value.swept && s !== undefined ? ` [${s.rows.map((r) => `T=${r.temperature}: Pass@${s.samplesPerPrompt} ${pct(r.passAtK)}, RP@${s.rewardPassK} ${pct(r.rewardPassAtK)}`).join('; ')}]` : '';
      return `iteration ${p.value.iteration}: temperature ${p.value.temperature}${p.value.swept ? ' (swept)' : ' (kept)'}${table}`;
    }
    case 'datasetReady': {
      const d = p.value.dataset;
      return d === undefined
        ? 'dataset ready'
        : `dataset ${d.iteration}: ${d.promptsTried} prompts at T=${d.temperature}, ${d.promptsWithCorrect} with a correct sample, ${d.correctSamples}/${d.samplesGenerated} correct, ${d.checkedSamples < d.correctSamples ? `${d.checkedSamples} pass the chain check, ` : ''}${d.promptsSolvedGreedily > 0 ? `${d.promptsSolvedGreedily} prompts already answered greedily, ` : ''}${d.promptsRationalized > 0 ? `${d.promptsRationalized} sampled again with the answer as a hint, ` : ''}${d.keptSamples} kept (mean PRM ${d.meanPrmScore.toFixed(3)})`;
    }
    case 'iterationEvaluated': {
      const s = p.value.stats;
      if (s === undefined) return 'iteration evaluated';
      const tests = [
        s.greedyAccuracyInDomain === undefined ? '' : `, in-domain ${pct(s.greedyAccuracyInDomain)}`,
        s.greedyAccuracyOutOfDomain === undefined ? '' : `, out-of-domain ${pct(s.greedyAccuracyOutOfDomain)}`,
      ].join('');
      return `${ref(s.policy)} evaluated: greedy validation ${pct(s.greedyAccuracyValidation)}${tests}, Pass@${s.samplesPerPrompt} ${pct(s.passAtK)}, Reward-Pass@${s.rewardPassK} ${pct(s.rewardPassAtK)}`;
    }
    case 'runFinished':
      return `run finished: ${runV1.runStateToJSON(p.value.state)}${p.value.errorMessage === '' ? '' : ` (${p.value.errorMessage})`}`;
    case 'runCancelled':
      return `run cancelled: ${p.value.reason}`;
    default:
      return `event ${event.eventId}`;
  }
}
