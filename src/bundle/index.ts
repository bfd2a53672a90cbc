export { DEFAULT_BUNDLE_LAYER_LIMITS, readFileFromLayer, isImagesYml, isImageLocationsYml, type BundleLayerLimits } from './bundle-layer.js';
export { parseImagesLock, type ImagesLock, type LockedImage } from './images-lock.js';
export {
  buildImageLocationsImage, imageLocationsTag, imageLocationsYaml, parseImageLocationsYaml,
  type BuiltImage, type ImageLocation,
} from './image-locations.js';
