export declare function owned(b: Uint8Array): Uint8Array;
export declare function transferListOf(...buffers: Uint8Array[]): ArrayBuffer[];
