DROP TABLE image_reservations;
