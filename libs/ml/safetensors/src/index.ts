export { serialize, parse } from './format.js';
export type { SafeTensor, ParsedSafetensors } from './format.js';
export type { Dtype, DtypeArrays, TensorData } from './dtypes.js';
export { SafetensorsError } from './errors.js';
export { toFloat32, f16BitsToFloat32, bf16BitsToFloat32 } from './half.js';
