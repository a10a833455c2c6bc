/**
 * What each caller may see now lives in server/views.ts; server/tus.ts still imports its ownership rule from here
 * (the tus adapter of issue 20 takes over that file).
 */
export { ownsUpload } from './views.ts';
