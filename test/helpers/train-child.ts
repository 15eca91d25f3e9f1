// Runs train() with the JSON config given as the last argument; used by tests that kill a training process.
import { train, type TrainConfig } from '../../train/trainer.js';

// The config is the last argument (with `node -e`, there is no script path before it).
const cfg = JSON.parse(process.argv[process.argv.length - 1]) as TrainConfig;
await train(cfg, (l) => process.stdout.write(`${l}\n`));
process.exit(0);
