DROP TABLE task_info;
DROP TABLE tasks;
DROP TABLE image_tags;
DROP TABLE image_locations;
DROP TABLE image_members;
DROP TABLE image_properties;
DROP TABLE images;
