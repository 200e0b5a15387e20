/** prunespace as a library: load saved subnetworks in Node with the packages prunespace installs (no native TensorFlow needed). */
export { fileLoadHandler, loadTrained, type SavedMetadata } from './training/save.js';
export { selectBackend, type BackendName } from './training/backends/select.js';
export { exportOnnx, type ExportRecord, type ExportRequest } from './export/export.js';
