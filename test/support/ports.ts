export { freePorts } from '../../infra/ports';
