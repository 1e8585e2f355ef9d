import { readFile, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { TokenizerError } from './errors.js';
import { COLOURS, SHAPES, pluralShape } from './scene.js';

/** The special tokens, in id order: ids 0-4. */
export const SPECIAL_TOKENS = { pad: '<pad>', bos: '<s>', eos: '</s>', unk: '<unk>', image: '<image>' } as const;
export type SpecialToken = keyof typeof SPECIAL_TOKENS;

/** Every word the templates use (questions and steps), so each is one token. */
export const WORLD_WORDS: readonly string[] = [
  ...COLOURS,
  ...SHAPES,
  ...SHAPES.map(pluralShape),
  'shape', 'shapes', 'digit', 'digits',
  'how', 'many', 'more', 'are', 'there', 'or', 'than', 'what', 'is', 'the', 'number', 'of', 'plus',
  'times', 'sum', 'and', 'in', 'total', 'less', 'equal', 'to', 'Answer',
];
const PUNCTUATION = ['.', ',', '?', '+', '-', '*', '=', '#'];
const MAX_NUMBER_TOKEN = 99;

// GPT-2's byte-to-unicode table: printable bytes map to themselves, the others (space, newline...)
// to code points from U+0100 up. The ByteLevel pre-tokenizer and decoder use the same table.
function byteToUnicode(): string[] {
  const printable = (b: number): boolean => (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
  const table: string[] = [];
  let next = 0;
  for (let b = 0; b < 256; b++) table[b] = String.fromCodePoint(printable(b) ? b : 256 + next++);
  return table;
}
const BYTE = byteToUnicode();
const byteLevel = (text: string): string => [...Buffer.from(text, 'utf8')].map((b) => BYTE[b] ?? '').join('');

// Pre-tokens: a blank line (the step boundary) and a newline stand alone; a word, a number or one
// punctuation mark carries the single space before it, GPT-2 style, so sentences cost one token
// per word. Anything else falls to one character per pre-token.
const PRE_TOKEN_PATTERN = '\\n\\n|\\n| ?[A-Za-z]+| ?[0-9]+| ?[^\\sA-Za-z0-9]|\\s';

export interface TokenizerFiles {
  /** The contents of tokenizer.json (Hugging Face tokenizers format). */
  readonly tokenizerJson: Record<string, unknown>;
  /** The contents of tokenizer_config.json. */
  readonly tokenizerConfig: Record<string, unknown>;
}

/**
 * Builds the world's tokenizer: a byte-level BPE whose vocabulary holds the specials, the step
 * boundary "\n\n", printable ASCII characters, tab, CR and LF (so any ASCII text still encodes and
 * round-trips),
 * and every template word and the numbers 0-99, bare and with a leading space. `ignore_merges`
 * makes each whole word one token without a merge table.
 */
export function buildWorldTokenizer(): TokenizerFiles {
  const vocab = new Map<string, number>();
  const add = (token: string): void => {
    if (!vocab.has(token)) vocab.set(token, vocab.size);
  };
  Object.values(SPECIAL_TOKENS).forEach(add);
  add(byteLevel('\n\n'));
  add(byteLevel('\n'));
  for (const c of ['\t', '\r']) add(byteLevel(c));
  for (let b = 32; b < 127; b++) add(byteLevel(String.fromCharCode(b)));
  const pieces = [...WORLD_WORDS, ...PUNCTUATION, ...Array.from({ length: MAX_NUMBER_TOKEN + 1 }, (_, i) => String(i))];
  for (const piece of pieces) {
    add(byteLevel(piece));
    add(byteLevel(` ${piece}`));
  }
  const addedTokens = Object.values(SPECIAL_TOKENS).map((content) => ({
    id: vocab.get(content),
    content,
    single_word: false,
    lstrip: false,
    rstrip: false,
    normalized: false,
    special: true,
  }));
  const tokenizerJson = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: addedTokens,
    normalizer: null,
    pre_tokenizer: {
      type: 'Sequence',
      pretokenizers: [
        { type: 'Split', pattern: { Regex: PRE_TOKEN_PATTERN }, behavior: 'Isolated', invert: false },
        { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
      ],
    },
    post_processor: null,
    decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: false },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: SPECIAL_TOKENS.unk,
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: false,
      byte_fallback: false,
      ignore_merges: true,
      vocab: Object.fromEntries(vocab),
      merges: [],
    },
  };
  const tokenizerConfig = {
    tokenizer_class: 'PreTrainedTokenizerFast',
    bos_token: SPECIAL_TOKENS.bos,
    eos_token: SPECIAL_TOKENS.eos,
    pad_token: SPECIAL_TOKENS.pad,
    unk_token: SPECIAL_TOKENS.unk,
    additional_special_tokens: [SPECIAL_TOKENS.image],
    add_bos_token: false,
    add_eos_token: false,
    clean_up_tokenization_spaces: false,
    model_max_length: 512,
  };
  return { tokenizerJson, tokenizerConfig };
}

/** Encoding and decoding as the model sees it. */
export interface TextTokenizer {
  /** Ids of the text, without any special token added. */
  encode(text: string): number[];
  /** The text of the ids; special tokens are written out unless skipped. */
  decode(ids: readonly number[], options?: { readonly skipSpecialTokens?: boolean }): string;
  /** The pieces the text splits into (byte-level strings: "Ġ" is a space, "ĊĊ" a blank line). */
  tokenize(text: string): string[];
  tokenToId(token: string): number | undefined;
  readonly vocabSize: number;
  readonly specialIds: Readonly<Record<SpecialToken, number>>;
  /** The id of "\n\n", the step boundary where the PRM reads its scores. */
  readonly stepSeparatorId: number;
}

// The part of @huggingface/tokenizers' Tokenizer this wrapper uses. The package's .d.ts files use
// extensionless relative imports, which NodeNext resolution cannot follow, so its own types
// collapse to `any`; this declaration restores checking at the one place we touch it.
interface HfTokenizer {
  encode(text: string, options: { add_special_tokens: boolean }): { ids: number[] };
  decode(ids: number[], options: { skip_special_tokens: boolean; clean_up_tokenization_spaces: boolean }): string;
  tokenize(text: string, options: { add_special_tokens: boolean }): string[];
  token_to_id(token: string): number | undefined;
  get_vocab(withAddedTokens: boolean): Map<string, number>;
}
const HfTokenizerClass = Tokenizer as unknown as new (tokenizerJson: object, tokenizerConfig: object) => HfTokenizer;

/**
 * Wraps a tokenizer.json + tokenizer_config.json through @huggingface/tokenizers (the library
 * transformers.js uses). Checks that the special tokens exist and that "\n\n" is one token.
 */
export function createTokenizer(files: TokenizerFiles): TextTokenizer {
  let tokenizer: HfTokenizer;
  try {
    tokenizer = new HfTokenizerClass(files.tokenizerJson, files.tokenizerConfig);
  } catch (cause) {
    throw new TokenizerError(`tokenizer.json could not be loaded: ${cause instanceof Error ? cause.message : String(cause)}`, { cause });
  }
  const vocabSize = tokenizer.get_vocab(true).size;
  const specialIds = Object.fromEntries(
    Object.entries(SPECIAL_TOKENS).map(([name, token]) => {
      const id = tokenizer.token_to_id(token);
      if (id === undefined) throw new TokenizerError(`tokenizer has no special token ${token} (${name})`);
      return [name, id];
    }),
  ) as Record<SpecialToken, number>;
  const separator = tokenizer.encode('\n\n', { add_special_tokens: false }).ids;
  if (separator.length !== 1 || separator[0] === undefined) {
    throw new TokenizerError(`the step boundary "\\n\\n" must be one token, it encodes to ${separator.length} ids`);
  }
  return {
    encode: (text) => tokenizer.encode(text, { add_special_tokens: false }).ids,
    decode: (ids, options = {}) => {
      if (ids.length === 0) return '';
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) {
          throw new TokenizerError(`token id ${id} is outside the vocabulary [0, ${vocabSize})`);
        }
      }
      return tokenizer.decode([...ids], {
        skip_special_tokens: options.skipSpecialTokens ?? false,
        clean_up_tokenization_spaces: false,
      });
    },
    tokenize: (text) => tokenizer.tokenize(text, { add_special_tokens: false }),
    tokenToId: (token) => tokenizer.token_to_id(token),
    vocabSize,
    specialIds,
    stepSeparatorId: separator[0],
  };
}

/** The world's tokenizer, ready to use. */
export function createWorldTokenizer(): TextTokenizer {
  return createTokenizer(buildWorldTokenizer());
}

export const TOKENIZER_FILE = 'tokenizer.json';
export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';

/** Writes tokenizer.json and tokenizer_config.json into dir (created if missing). */
export async function writeTokenizerFiles(dir: string, files: TokenizerFiles): Promise<void> {
  await mkdir(dir, { recursive: true });
  await writeFile(join(dir, TOKENIZER_FILE), `${JSON.stringify(files.tokenizerJson, null, 2)}\n`);
  await writeFile(join(dir, TOKENIZER_CONFIG_FILE), `${JSON.stringify(files.tokenizerConfig, null, 2)}\n`);
}

/** Reads tokenizer.json and tokenizer_config.json from dir. */
export async function readTokenizerFiles(dir: string): Promise<TokenizerFiles> {
  const read = async (name: string): Promise<Record<string, unknown>> => {
    const path = join(dir, name);
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (cause) {
      throw new TokenizerError(`cannot read ${path}`, { cause });
    }
    try {
      return JSON.parse(text) as Record<string, unknown>;
    } catch (cause) {
      throw new TokenizerError(`${path} is not valid JSON`, { cause });
    }
  };
  return { tokenizerJson: await read(TOKENIZER_FILE), tokenizerConfig: await read(TOKENIZER_CONFIG_FILE) };
}
