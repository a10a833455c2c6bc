/**
 * --send-compressed's modes, in a module that runs nothing: the command line checks the option when it starts,
 * without loading execa and the btrfs runner (core/btrfs/features.ts, which decides what a mode means; issue 22).
 */

/** --send-compressed: 'auto' (where it helps and both ends can), 'on' (or fail), 'off' (version 1). */
export const sendCompressedModes = ['auto', 'on', 'off'] as const;
export type SendCompressedMode = (typeof sendCompressedModes)[number];
